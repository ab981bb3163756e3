#pragma once
/// \file
/// `corio::semaphore` and `corio::bounded_semaphore`: counters of units that tasks acquire and
/// release (asyncio's `Semaphore` and `BoundedSemaphore`).

#include "corio/impl/sync_waiter.hpp"
#include "corio/sync/detail/grant_awaiter.hpp"
#include "corio/sync/guard.hpp"

#include <coroutine>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

namespace corio {

/// A counter of units (asyncio's `Semaphore`): `co_await s.acquire()` takes one, waiting while
/// there is none; `s.release()` gives one back. `auto guard = co_await s.scoped();` releases
/// its unit when the guard goes. The usual use: at most N tasks at a time in some section.
///
/// - Fair, first in first out: `release()` hands its unit straight to the task that has waited
///   longest, which keeps it until it runs; a task arriving meanwhile queues behind the waiting
///   ones. Acquiring when a unit is free (so nobody waits) completes at once, without
///   suspending.
/// - Cancellation: a task cancelled while it waits leaves the queue and gets
///   `cancelled_error`. A task cancelled after a unit was handed to it, but before it ran,
///   hands the unit on to the next waiter (or back to the counter) first: no unit is lost.
/// - Not copyable or movable: waiters point into it. Destroyed while tasks wait on it, it
///   never wakes them, but they still respond to cancellation (as `corio::run` cancels what is
///   left on its way out); tasks it has already woken finish their `co_await` without touching
///   it again.
class semaphore {
public:
    using acquire_awaiter = detail::grant_awaiter<semaphore>;

    /// A semaphore with `value` units; a negative `value` throws `std::invalid_argument`
    /// (asyncio's `ValueError`).
    explicit semaphore(std::ptrdiff_t value = 1)
        : semaphore(value, std::numeric_limits<std::ptrdiff_t>::max()) {}
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;
    ~semaphore() {
        detail::detach_all(waiting_);
        detail::detach_all(granted_);
    }

    /// `co_await s.acquire()`: takes a unit, waiting for one if none is free.
    [[nodiscard]] acquire_awaiter acquire() noexcept;

    /// `auto guard = co_await s.scoped();`: takes a unit, released by the returned guard.
    [[nodiscard]] detail::scoped_awaiter<semaphore, acquire_awaiter> scoped() noexcept;

    /// Gives a unit back: to the task that has waited longest if any, else to the counter.
    /// On a `bounded_semaphore`, a release beyond the initial value throws `std::logic_error`.
    void release() {
        if (detail::sync_waiter* next = waiting_.front()) {
            // Invariant: while tasks wait, no unit is free; a released one goes to a waiter.
            next->grant_into(granted_);
            return;
        }
        if (value_ >= bound_) {
            throw std::logic_error("corio::bounded_semaphore released too many times");
        }
        ++value_;
    }

    /// Whether `acquire()` would have to wait (no unit is free).
    [[nodiscard]] bool locked() const noexcept { return value_ == 0; }

    /// The units free now.
    [[nodiscard]] std::ptrdiff_t value() const noexcept { return value_; }

protected:
    semaphore(std::ptrdiff_t value, std::ptrdiff_t bound) : value_(value), bound_(bound) {
        if (value < 0) throw std::invalid_argument("corio::semaphore: negative initial value");
    }

private:
    friend detail::grant_awaiter<semaphore>;
    static constexpr const char* acquire_name = "corio::semaphore::acquire";
    bool try_take() noexcept {
        if (value_ == 0) return false;
        --value_;
        return true;
    }

    detail::waiter_list waiting_;
    // Waiters handed a unit that have not resumed yet.
    detail::waiter_list granted_;
    std::ptrdiff_t value_;
    std::ptrdiff_t bound_;
};

/// A semaphore that refuses to count above its initial value (asyncio's `BoundedSemaphore`):
/// releasing more units than were acquired throws `std::logic_error` (asyncio's `ValueError`),
/// which catches a release without a matching acquire. Otherwise a `semaphore`.
class bounded_semaphore : public semaphore {
public:
    /// A bounded semaphore with `value` units, never more; a negative `value` throws
    /// `std::invalid_argument`.
    explicit bounded_semaphore(std::ptrdiff_t value = 1) : semaphore(value, value) {}
};

inline semaphore::acquire_awaiter semaphore::acquire() noexcept { return acquire_awaiter(*this); }

inline detail::scoped_awaiter<semaphore, semaphore::acquire_awaiter> semaphore::scoped() noexcept {
    return {*this, *this};
}

}  // namespace corio
